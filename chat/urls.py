from django.urls import path

from chat import chat_views, hosted, search, views

urlpatterns = [
    path("chats/", views.chats_page, name="chats"),
    path("chats/<int:chat_id>/", views.chats_page, name="chat_page"),
    path("api/chats/", views.chat_list, name="chat_list"),
    path("api/chats/new/", views.chat_create, name="chat_create"),
    path("api/chats/people/", views.chat_people, name="chat_people"),
    path("api/chats/sync/", views.chat_sync, name="chat_sync"),
    path("api/chats/search/", search.chat_search, name="chat_search"),
    path("api/chats/<int:chat_id>/messages/", views.chat_messages, name="chat_messages"),
    path("api/chats/<int:chat_id>/changes/", views.chat_changes, name="chat_changes"),
    path("api/chats/<int:chat_id>/read/", views.chat_read, name="chat_read"),
    path("api/chats/<int:chat_id>/messages/<str:message_id>/", views.chat_message, name="chat_message"),
    path(
        "api/chats/<int:chat_id>/messages/<str:message_id>/restore/",
        views.chat_message_restore,
        name="chat_message_restore",
    ),
    path(
        "api/chats/<int:chat_id>/messages/<str:message_id>/reactions/",
        views.chat_message_reactions,
        name="chat_message_reactions",
    ),
    path(
        "api/chats/<int:chat_id>/messages/<str:message_id>/hosted/<str:content_token>/",
        hosted.message_hosted,
        name="chat_message_hosted",
    ),
    path("api/chats/<int:chat_id>/", chat_views.chat_detail, name="chat_detail"),
    path("api/chats/<int:chat_id>/members/", chat_views.chat_members, name="chat_members"),
    path("api/chats/<int:chat_id>/members/<uuid:oid>/", chat_views.chat_member, name="chat_member"),
    path("api/chats/<int:chat_id>/unread/", chat_views.chat_unread, name="chat_unread"),
    path("api/chats/<int:chat_id>/hide/", chat_views.chat_hide, name="chat_hide"),
]
