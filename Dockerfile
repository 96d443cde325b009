# The example services of workers/, as one image: docker-compose.yml runs
# each service from it with a different command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY busignal ./busignal
RUN pip install --no-cache-dir .

# The example services; `busignal worker` imports modules from the working
# directory, and `python -m workers.sender` runs from it too.
COPY workers ./workers

CMD ["python", "-m", "workers.sender"]
