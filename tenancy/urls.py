from django.urls import path

from tenancy import views

urlpatterns = [
    path("sign-in/", views.sign_in, name="login"),
    path("sign-out/", views.sign_out, name="logout"),
    path("account/switch-organization/", views.switch_tenant, name="switch_tenant"),
    path("account/confirm-password/", views.confirm_password, name="confirm_password"),
]
