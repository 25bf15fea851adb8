from django.urls import path

from exclusions import views

app_name = "exclusions"

urlpatterns = [
    path("", views.index, name="index"),
    path("<str:kind>/add/", views.add, name="add"),
    path("<str:kind>/<str:pk>/remove/", views.remove, name="remove"),
    path("high-value/", views.high_value, name="high_value"),
]
