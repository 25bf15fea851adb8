from django.urls import path

from outbox import views

app_name = "outbox"

urlpatterns = [
    path("outbox/", views.outbox_list, name="list"),
    path("outbox/<int:message_id>/", views.outbox_detail, name="detail"),
    path("outbox/<int:message_id>/html/", views.outbox_html_preview, name="html"),
    path("outbox/<int:message_id>/retry/", views.outbox_retry, name="retry"),
]
