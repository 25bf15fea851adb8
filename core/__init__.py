"""The web core: what every app's views and services share about HTTP.

* ``core.errors``: the one ``ApplicationError`` hierarchy services raise
  (``Invalid``, ``Conflict``, ``NeedsConfirmation``, ``NeedsReauth``, ``NotAllowed``);
* ``core.middleware.WebCoreMiddleware``: the one place those errors become
  responses, and where each request's context (request id, client IP) is set;
* ``core.context``: that request context, which the audit trail reads;
* ``core.pages``: ``render_page`` (full page, or ``template#partial`` for htmx,
  always ``Vary: HX-Request``), ``on_error`` (how a view's page shows an error)
  and ``require_valid`` (a form's errors as an ``InvalidForm``).

It sits below every app, tenancy included, and imports none of them, so any
app's services can raise its errors and the audit app can read its context
without an import cycle. The tenant and provider side of a request (typed
requests, ``tenant_page``/``provider_page``, fetching scoped objects) lives in
``tenancy.access``, the one module that scopes requests, because it needs
tenancy's models.

A view, in full::

    @tenant_page(manage=True)
    @require_POST
    def rename(request: TenantRequest, pk: str) -> HttpResponse:
        thing = get_tenant_object_or_404(request, Thing, pk=pk)
        form = RenameForm(request.POST)
        # Any ApplicationError below re-renders this page with the form as typed.
        on_error(request, lambda error: _page(request, form=form, error=error))
        require_valid(form)  # InvalidForm: 400, the page with the form's errors
        thing_rename(thing=thing, acting_user=request.user, name=form.cleaned_data["name"])
        return redirect("things:index")
"""
