from django.urls import path

from permissions import views

app_name = "permissions"

urlpatterns = [
    path("", views.index, name="index"),
    path("access-levels/", views.levels, name="levels"),
    path("grants/<str:grant_id>/renew/", views.renew, name="renew"),
    path("remove/", views.remove, name="remove"),
    path("restore/", views.restore, name="restore"),
]
