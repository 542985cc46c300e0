from django.urls import path

from identity import calling

urlpatterns = [
    path("call/", calling.call_page, name="call"),
    path("call/people/", calling.people, name="call_people"),
    path("api/acs-token/", calling.acs_token, name="acs_token"),
]
