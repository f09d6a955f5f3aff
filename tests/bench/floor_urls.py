from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import path


@login_required
def floor(request):
    return HttpResponse(f"<!doctype html><title>floor</title><p>{request.user.username}</p>")


urlpatterns = [path("floor/", floor)]
