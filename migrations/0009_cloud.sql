-- Cloud-backed AI credits: a resource's region, project, API version, model map and accepted betas
-- (Bedrock, Vertex AI, Azure OpenAI); NULL for other resources.
ALTER TABLE resources ADD COLUMN cloud_json TEXT;
