# The services in workers/ (busignal.examples once installed), as one image: docker-compose.yml
# runs each service from it with a different command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY busignal ./busignal
# busignal/examples links to workers/: the services docker-compose.yml runs
COPY workers ./workers
# The example services are part of the package, so installing it is enough.
RUN pip install --no-cache-dir .

CMD ["python", "-m", "busignal.examples.sender"]
