# Interim scaffolding while the feature apps are built; removed when each lands.
from django.shortcuts import render

from tenancy.access import tenant_view


def interim_view(name):
    @tenant_view
    def view(request):
        return render(request, "interim.html", {"heading": name})

    return view
