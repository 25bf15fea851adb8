# Production image: gunicorn serves the portal; the same image runs the Celery
# worker and beat with a different command (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORTAL_VAR_DIR=/app/var

WORKDIR /app
RUN useradd --create-home --uid 10001 portal
COPY pyproject.toml ./
RUN pip install --upgrade pip && mkdir -p /app/var && chown portal /app/var
COPY . .
RUN pip install . \
 && DEBUG=0 SECRET_KEY=build-only-collectstatic-key-0123456789abcdefghijklmnopqrstuvwxyz \
    ALLOWED_HOSTS=build python manage.py collectstatic --noinput \
 && chown -R portal /app/var

USER portal
EXPOSE 8000
CMD ["gunicorn", "defender_portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
