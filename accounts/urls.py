from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import auth_views, settings_views, views

app_name = "accounts"

urlpatterns = [
    path("sign-in/", auth_views.sign_in, name="sign_in"),
    path("sign-out/", auth_views.sign_out, name="sign_out"),
    # Users
    path("users/", views.user_list, name="user_list"),
    path("users/export.csv", views.user_export, name="user_export"),
    path("users/new/", views.UserCreateView.as_view(), name="user_create"),
    path("users/bulk-deactivate/", views.user_bulk_deactivate, name="user_bulk_deactivate"),
    path("users/<int:pk>/", views.UserDetailView.as_view(), name="user_detail"),
    path(
        "users/<int:pk>/permissions/",
        views.UserPermissionsView.as_view(),
        name="user_permissions",
    ),
    path("users/<int:pk>/security/", views.UserSecurityView.as_view(), name="user_security"),
    path("users/<int:pk>/activity/", views.UserActivityView.as_view(), name="user_activity"),
    path("users/<int:pk>/commission/", views.UserCommissionView.as_view(), name="user_commission"),
    path("users/<int:pk>/edit/", views.UserEditView.as_view(), name="user_edit"),
    path("users/<int:pk>/deactivate/", views.UserDeactivateView.as_view(), name="user_deactivate"),
    path("users/<int:pk>/reactivate/", views.UserReactivateView.as_view(), name="user_reactivate"),
    path("users/<int:pk>/delete/", views.UserDeleteView.as_view(), name="user_delete"),
    path(
        "users/<int:pk>/access-email/",
        views.UserSendAccessEmailView.as_view(),
        name="user_send_access_email",
    ),
    # The access email's link (public)
    path("set-password/", views.set_password, name="set_password_form"),
    path("set-password/<str:token>/", views.set_password_link, name="set_password"),
    # Settings lists
    *[
        pattern
        for config in settings_views.LISTS
        for pattern in settings_views.settings_list_urls(config)
    ],
]

register(
    Screen(
        "accounts:user_list",
        "Users",
        "People",
        catalog.USERS,
        catalog.READ,
        "Find users, create them, send access emails, deactivate.",
    ),
    *settings_views.settings_screens(),
)
