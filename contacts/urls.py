from django.urls import path

from contacts import views

app_name = "contacts"

urlpatterns = [
    path("", views.index, name="index"),
    path("search/", views.search, name="search"),
    path("add/", views.add, name="add"),
    path("<int:pk>/remove/", views.remove, name="remove"),
    path("<int:pk>/move/", views.move, name="move"),
    path("<int:pk>/phone/", views.phone, name="phone"),
    path("<int:pk>/test-notification/", views.send_test, name="send_test"),
    path("<int:pk>/retry-email/", views.retry_email, name="retry_email"),
]
