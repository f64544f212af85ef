# notify: one image for every process (`notify api`, `notify worker`, `notify migrate`, `notify admin …`).
# Build: docker build -t notify .   Run the whole stack: docker compose up --scale worker=3
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# A regular (non-editable) install of the package and its dependencies.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf src

# `notify migrate` runs alembic from the working directory: it needs alembic.ini and the migrations.
COPY alembic.ini ./
COPY alembic ./alembic

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin notify
USER notify

EXPOSE 8000
ENTRYPOINT ["notify"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
