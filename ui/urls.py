from django.urls import path

from ui import views

urlpatterns = [
    path("account/theme/", views.set_theme, name="set_theme"),
    path("account/navigation/", views.set_navigation, name="set_navigation"),
    path("favicon.ico", views.favicon, name="favicon"),
]
