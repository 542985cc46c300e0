from django.urls import path

from chat import views

urlpatterns = [
    path("chats/", views.chats_page, name="chats"),
    path("chats/<int:chat_id>/", views.chats_page, name="chat_page"),
    path("api/chats/", views.chat_list, name="chat_list"),
    path("api/chats/new/", views.chat_create, name="chat_create"),
    path("api/chats/people/", views.chat_people, name="chat_people"),
    path("api/chats/sync/", views.chat_sync, name="chat_sync"),
    path("api/chats/<int:chat_id>/messages/", views.chat_messages, name="chat_messages"),
    path("api/chats/<int:chat_id>/changes/", views.chat_changes, name="chat_changes"),
    path("api/chats/<int:chat_id>/read/", views.chat_read, name="chat_read"),
]
