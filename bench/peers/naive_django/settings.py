"""startproject's settings, trimmed to what a webhook receiver uses; the database comes
from DATABASE_URL (SQLite or PostgreSQL, with Django's defaults: no WAL, no pool)."""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "naive-django-bench")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STRIPE_WEBHOOK_SECRET = os.environ.get("BENCH_STRIPE_SECRET", "whsec_bench")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "bench.peers.naive_django.receiver",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bench.peers.naive_django.urls"
DATABASES = {"default": dict(dj_database_url.config(default="sqlite:///naive.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
