from django.urls import path

from escalations import views

urlpatterns: list = [
    path("l/<str:token>/", views.lead_page, name="lead_link"),
]
