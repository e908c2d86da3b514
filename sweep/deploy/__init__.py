"""Deploy: a chosen fleet as files a user deploys (SkyPilot task YAML, vLLM launch commands)."""
