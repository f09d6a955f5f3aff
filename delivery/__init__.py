"""Out of the request: the outbox, its worker, and the email that goes through it.

Rows that must reach the outside world (an email, a webhook delivery, a SIEM record) are written
in the same transaction as the change they describe, together with a task of Django's tasks
framework (django-tasks-db keeps it in the same database). A worker (`manage.py deliver`) runs
the tasks; a receiver that is down delays the delivery and never fails the person's action.
"""
