from tenancy.interim import interim_view

audit_log = interim_view("Audit log")
