"""Django's PostgreSQL backend, with the `django_db_*` metrics bound once per connection."""
