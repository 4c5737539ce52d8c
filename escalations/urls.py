from django.urls import path

from escalations import views
from escalations.slack import views as slack_views

urlpatterns: list = [
    path("l/<str:token>/", views.lead_page, name="lead_link"),
    path("slack/events", slack_views.events, name="slack_events"),
]
