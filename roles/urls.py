from django.urls import path

from . import views

app_name = "roles"

urlpatterns = [
    path("me/access/", views.my_access, name="my_access"),
]
