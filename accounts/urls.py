from django.urls import path

from . import auth_views

app_name = "accounts"

urlpatterns = [
    path("sign-in/", auth_views.sign_in, name="sign_in"),
    path("sign-out/", auth_views.sign_out, name="sign_out"),
]
