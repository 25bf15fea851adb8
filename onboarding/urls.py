from django.urls import path

from onboarding import views

app_name = "onboarding"

urlpatterns = [
    path("", views.index, name="index"),
    path("get-started/", views.get_started, name="get_started"),
    # The Get started page (the guide's overview), where the welcome email's link lands; before the steps' pattern.
    path("get-started/overview/", views.overview, name="overview"),
    # The welcome email's link; two path segments, so it never collides with a step.
    path("get-started/invitation/<str:token>/", views.invitation, name="invitation"),
    path("get-started/<slug:step>/", views.guide_step, name="step"),
]
