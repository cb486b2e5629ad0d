# syntax=docker/dockerfile:1
# The realtime server as a container image: `docker compose up` runs two of these behind nginx
# (see docker-compose.yml). Build: docker build -t realtime .
#
# Two stages: the first turns the project and every dependency into wheels, the second
# installs only those wheels into a clean slim image, so no compiler, pip cache or source
# tree ends up in what runs.

FROM python:3.13-slim AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY realtime ./realtime
COPY static ./static
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.13-slim
RUN useradd --system --create-home --home-dir /home/realtime --uid 10001 realtime
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels realtime
USER realtime
WORKDIR /home/realtime
# Without REALTIME_DATABASE_URL the server starts its embedded PostgreSQL in this volume.
ENV REALTIME_DATA_DIR=/home/realtime/data \
    PYTHONUNBUFFERED=1
VOLUME /home/realtime/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["realtime", "serve", "--host", "0.0.0.0"]
