"""The portal mounted under /portal/ (tests of links that depend on the URLconf)."""

from django.urls import include, path

urlpatterns = [path("portal/", include("billing_access.urls"))]
