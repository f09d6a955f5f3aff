from django.urls import path

from portal.navigation import Screen, register

from . import catalog, elevation_views, sod_views, views

app_name = "roles"

urlpatterns = [
    path("me/access/", views.my_access, name="my_access"),
    path("access/role-groups/", views.RoleGroupListView.as_view(), name="rolegroup_list"),
    path("access/role-groups/new/", views.RoleGroupCreateView.as_view(), name="rolegroup_create"),
    path("access/role-groups/<int:pk>/", views.rolegroup_matrix, name="rolegroup_matrix"),
    path(
        "access/role-groups/<int:pk>/edit/",
        views.RoleGroupEditView.as_view(),
        name="rolegroup_edit",
    ),
    path(
        "access/role-groups/<int:pk>/clone/",
        views.RoleGroupCloneView.as_view(),
        name="rolegroup_clone",
    ),
    path("access/role-groups/<int:pk>/delete/", views.rolegroup_delete, name="rolegroup_delete"),
    path("access/roles/", views.RoleListView.as_view(), name="role_list"),
    path("access/roles/new/", views.role_edit, name="role_create"),
    path("access/roles/<int:pk>/", views.role_edit, name="role_edit"),
    path("access/roles/<int:pk>/clone/", views.RoleCloneView.as_view(), name="role_clone"),
    path("access/roles/<int:pk>/delete/", views.role_delete, name="role_delete"),
    path("access/compare/", views.compare, name="compare"),
    path("access/role-model/", views.role_model, name="role_model"),
    path("access/role-model/export/", views.role_model_export, name="role_model_export"),
    path("access/role-model/import/", views.role_model_import, name="role_model_import"),
    path("access/who-has-access/", views.who_has_access, name="who_has_access"),
    path("access/users/<int:pk>/", views.user_permissions, name="user_permissions"),
    path("access/users/<int:pk>/overrides/", views.override_add, name="override_add"),
    path("access/overrides/<int:pk>/remove/", views.override_remove, name="override_remove"),
    # Just-in-time access.
    path("me/access-requests/", elevation_views.request_list, name="request_list"),
    path("me/access-requests/new/", elevation_views.request_create, name="request_create"),
    path(
        "me/access-requests/<int:pk>/withdraw/",
        elevation_views.request_withdraw,
        name="request_withdraw",
    ),
    path("me/access-requests/<int:pk>/end/", elevation_views.request_end, name="request_end"),
    path("access/requests/", elevation_views.request_queue, name="request_queue"),
    path("access/requests/<int:pk>/", elevation_views.request_decide, name="request_decide"),
    path("access/elevations/", elevation_views.elevation_list, name="elevation_list"),
    path("access/elevations/<int:pk>/end/", elevation_views.elevation_end, name="elevation_end"),
    path(
        "access/users/<int:pk>/eligibility/",
        elevation_views.eligibility_add,
        name="eligibility_add",
    ),
    path(
        "access/eligibilities/<int:pk>/remove/",
        elevation_views.eligibility_remove,
        name="eligibility_remove",
    ),
    # Separation of duties.
    path("access/separation-of-duties/", sod_views.sod_rule_list, name="sod_rule_list"),
    path("access/separation-of-duties/new/", sod_views.sod_rule_edit, name="sod_rule_create"),
    path("access/separation-of-duties/<int:pk>/", sod_views.sod_rule_edit, name="sod_rule_edit"),
    path(
        "access/separation-of-duties/<int:pk>/delete/",
        sod_views.sod_rule_delete,
        name="sod_rule_delete",
    ),
    path("access/separation-of-duties/report/", sod_views.sod_report, name="sod_report"),
    path(
        "access/separation-of-duties/report.csv",
        sod_views.sod_report_csv,
        name="sod_report_csv",
    ),
    path(
        "access/separation-of-duties/exceptions/",
        sod_views.sod_exception_list,
        name="sod_exception_list",
    ),
    path(
        "access/separation-of-duties/exceptions/new/",
        sod_views.sod_exception_create,
        name="sod_exception_create",
    ),
    path(
        "access/separation-of-duties/exceptions/<int:pk>/end/",
        sod_views.sod_exception_revoke,
        name="sod_exception_revoke",
    ),
]

_GROUPS = catalog.USER_GROUPS
register(
    Screen(
        "roles:rolegroup_list",
        "Role groups",
        "Access",
        _GROUPS,
        catalog.READ,
        "The permission matrix: what each role group grants, area by area.",
    ),
    Screen(
        "roles:role_list",
        "Roles",
        "Access",
        _GROUPS,
        catalog.READ,
        "Business functions that combine role groups, with their members.",
    ),
    Screen(
        "roles:who_has_access",
        "Who has access",
        "Access",
        _GROUPS,
        catalog.READ,
        "Everyone who reaches a level on an area, and through what.",
    ),
    Screen(
        "roles:compare",
        "Compare",
        "Access",
        _GROUPS,
        catalog.READ,
        "Two roles or two role groups side by side.",
    ),
    Screen(
        "roles:role_model",
        "Export and import",
        "Access",
        _GROUPS,
        catalog.READ,
        "Move a tested role model between environments as JSON.",
    ),
)

register(
    Screen(
        "roles:request_create",
        "Request access",
        "You",
        None,
        description="Ask for a role group you are eligible for, for a few hours.",
        visible_to=elevation_views.may_request,
    ),
    Screen(
        "roles:request_list",
        "My requests",
        "You",
        None,
        description="Your access requests: waiting, active, ended; withdraw or end one.",
        visible_to=elevation_views.may_request,
    ),
    Screen(
        "roles:request_queue",
        "Requests",
        "Access",
        catalog.ACCESS_REQUESTS,
        catalog.READ,
        "Access requests waiting for a decision, with what each would add.",
    ),
    Screen(
        "roles:elevation_list",
        "Active elevations",
        "Access",
        catalog.ACCESS_REQUESTS,
        catalog.READ,
        "Who holds what through a request now, until when, why and approved by whom.",
    ),
)

register(
    Screen(
        "roles:sod_rule_list",
        "Separation of duties",
        "Access",
        _GROUPS,
        catalog.READ,
        "Combinations of rights nobody may hold at once, checked at every change of access.",
    ),
    Screen(
        "roles:sod_exception_list",
        "SoD exceptions",
        "Access",
        catalog.ACCESS_REQUESTS,
        catalog.READ,
        "Approved, expiring exceptions to separation-of-duties rules; grant or end one.",
    ),
    Screen(
        "roles:sod_report",
        "SoD violations",
        "Governance",
        _GROUPS,
        catalog.READ,
        "Who holds both sides of a separation-of-duties rule now, and under which exception.",
    ),
)
