from django.urls import re_path

from fastboot_dashboard.content.batches import views

urlpatterns = [
    re_path(r'^$', views.IndexView.as_view(), name='index'),
    re_path(r'^create/$', views.CreateView.as_view(), name='create'),
    re_path(r'^(?P<batch_id>[^/]+)/$', views.DetailView.as_view(),
            name='detail'),
]
