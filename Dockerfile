# syntax=docker/dockerfile:1
# The assistant in one image. Each part runs by its command (`python -m bot <role>`):
#   docker run IMAGE gateway | rasa --host 0.0.0.0 | actions --host 0.0.0.0 | migrate
# compose.yaml runs them together (README, "Production (docker compose)").
#
# Built by the project's own scripts/setup.sh, one step at a time, from the hashed locks `make setup` installs,
# so CI's `make test` checks what the image runs. Two Pythons: the application on the official image's Python 3.11
# (its security updates, tzdata and CA certificates come with the base), Rasa 3.6 on a Python 3.10 that uv
# installs under /opt/python (python-build-standalone: stripped, relocatable, no compiler needed). Both
# environments are built in the same base image, at the paths the last stage runs them from.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

# uv, the version requirements/app.lock pins: it installs Python 3.10 and the Rasa environment.
FROM ${UV_IMAGE} AS uv

# --- build: the Rasa environment, the model, the application environment -----------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG RASA_PYTHON=3.10.22
ENV NEET_CACHE_DIR=/opt/neet/cache \
    NEET_RASA_ENV=/opt/neet/venv-rasa \
    NEET_APP_ENV=/opt/neet/venv-app \
    NEET_APP_DEPS=runtime \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false
COPY --from=uv /uv /usr/local/bin/uv
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/uv uv python install "${RASA_PYTHON}"

# Ordered by how often each input changes: Rasa's lock, then the training data, then the application.
COPY scripts/setup.sh scripts/step.sh scripts/
COPY requirements/rasa.lock requirements/
RUN --mount=type=cache,target=/root/.cache/uv scripts/setup.sh rasa

COPY config.yml ./
# The custom NLU components (nlu/) and the text rules they share with the gateway.
COPY nlu/ nlu/
COPY bot/__init__.py bot/
COPY bot/understanding/__init__.py bot/understanding/normalise.py bot/understanding/
COPY domain/ domain/
COPY nlu_data/ nlu_data/
COPY dialogues/ dialogues/
# models/current.tar.gz links into the cache: the file itself is what the last stage takes.
RUN scripts/setup.sh model \
    && mkdir -p /opt/neet/model \
    && cp --dereference models/current.tar.gz /opt/neet/model/current.tar.gz

COPY pyproject.toml ./
COPY requirements/app.lock requirements/
COPY deploy/runtime_requirements.py deploy/
# Nothing installs at run time: pip leaves the environment once it has done its work.
RUN --mount=type=cache,target=/root/.cache/pip scripts/setup.sh app \
    && /opt/neet/venv-app/bin/python -m pip uninstall --quiet --yes pip

# --- the image ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="neet-assistant" \
      org.opencontainers.image.description="Brussels youth employment assistant: gateway, Rasa, action server" \
      org.opencontainers.image.licenses="EUPL-1.2"
ENV PATH=/opt/neet/venv-app/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    BOT_HOST=0.0.0.0 \
    RASA_TELEMETRY_ENABLED=false
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --link --from=build /opt/python /opt/python
COPY --link --from=build /opt/neet/venv-rasa /opt/neet/venv-rasa
COPY --link --from=build /opt/neet/venv-app /opt/neet/venv-app
COPY --link --from=build /opt/neet/model/current.tar.gz /app/models/current.tar.gz
COPY --link bot/ /app/bot/
COPY --link nlu/ /app/nlu/
COPY --link actions/ /app/actions/
COPY --link knowledge/ /app/knowledge/
COPY --link deploy/healthcheck.py /app/deploy/
WORKDIR /app
# The code's bytecode is compiled here, as the user cannot write next to it; DATA_DIR is the user's.
RUN ln -s /opt/neet/venv-app .venv \
    && ln -s /opt/neet/venv-rasa .venv-rasa \
    && python -m compileall -q bot actions deploy \
    && install -d -o app -g app data
# By number (the app user above): a host or Kubernetes can tell it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000 5005 5055
# One check for every role: deploy/healthcheck.py reads the role from the container's command.
HEALTHCHECK --interval=30s --timeout=5s --start-period=3m --retries=3 \
    CMD ["/opt/neet/venv-app/bin/python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["gateway"]
