from django.urls import path

from accounts import views

app_name = "auth"
urlpatterns = [
    path("token/", views.TokenObtainView.as_view(), name="token"),
    path("token/refresh/", views.TokenRotateView.as_view(), name="token-refresh"),
    path("token/verify/", views.TokenCheckView.as_view(), name="token-verify"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
]
