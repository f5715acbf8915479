# One image for the web app, the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

COPY . .
# collectstatic imports the settings, which insist on real configuration;
# these values exist only for this build step.
RUN DEBUG=0 ALLOWED_HOSTS=build \
    SECRET_KEY=build-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz \
    DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost \
    python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /app/artifacts && chown -R app /app/artifacts

USER app
EXPOSE 8000
CMD ["gunicorn", "finance_project.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
