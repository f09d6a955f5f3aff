from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import views

app_name = "reviews"

urlpatterns = [
    path("reviews/", views.dashboard, name="dashboard"),
    path("reviews/campaigns/", views.campaign_list, name="campaign_list"),
    path("reviews/campaigns/new/", views.campaign_create, name="campaign_create"),
    path("reviews/campaigns/<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path(
        "reviews/campaigns/<int:pk>/items/<int:item_pk>/",
        views.item_decide,
        name="item_decide",
    ),
    path("reviews/campaigns/<int:pk>/apply/", views.campaign_apply, name="campaign_apply"),
    path("reviews/campaigns/<int:pk>/close/", views.campaign_close, name="campaign_close"),
    path("reviews/campaigns/<int:pk>/report/", views.campaign_report, name="campaign_report"),
    path(
        "reviews/campaigns/<int:pk>/report.csv",
        views.campaign_report_csv,
        name="campaign_report_csv",
    ),
    path("reviews/reports/dormant/", views.report_dormant, name="report_dormant"),
    path("reviews/reports/without-2fa/", views.report_without_2fa, name="report_without_2fa"),
    path("reviews/reports/tokens/", views.report_tokens, name="report_tokens"),
    path("reviews/reports/overrides/", views.report_overrides, name="report_overrides"),
    path(
        "reviews/reports/unused-role-groups/",
        views.report_unused_groups,
        name="report_unused_groups",
    ),
    path("reviews/reports/privileged/", views.report_privileged, name="report_privileged"),
]

register(
    Screen(
        "reviews:dashboard",
        "Reviewer dashboard",
        "Governance",
        catalog.USER_ACTIVITY,
        catalog.READ,
        description="Governance reports at a glance and the sign-in chart.",
    ),
    Screen(
        "reviews:campaign_list",
        "Access reviews",
        "Governance",
        catalog.USER_ACTIVITY,
        catalog.READ,
        description="Campaigns that re-certify who has access, decisions and their reports.",
    ),
)
