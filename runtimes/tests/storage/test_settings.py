"""StorageSettings.from_env: KServe's variables and mounted secret files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kserve_stack_runtimes.storage.settings import RetryPolicy, StorageSettings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, {"endpoint_url": None, "verify": True, "anonymous": False}, id="defaults"),
        pytest.param(
            {"S3_ENDPOINT": "minio:9000", "S3_USE_HTTPS": "0"},
            {"endpoint_url": "http://minio:9000"},
            id="s3-endpoint-http",
        ),
        pytest.param(
            {"S3_ENDPOINT": "minio:9000"},
            {"endpoint_url": "https://minio:9000"},
            id="s3-endpoint-https-default",
        ),
        pytest.param(
            {"AWS_ENDPOINT_URL": "http://a:1", "S3_ENDPOINT": "b:2"},
            {"endpoint_url": "http://a:1"},
            id="aws-endpoint-url-wins",
        ),
        pytest.param(
            {"S3_VERIFY_SSL": "0", "AWS_CA_BUNDLE": "/ca.pem"}, {"verify": False}, id="no-verify"
        ),
        pytest.param({"AWS_CA_BUNDLE": "/ca.pem"}, {"verify": "/ca.pem"}, id="ca-bundle"),
        pytest.param(
            {"AWS_DEFAULT_REGION": "eu-west-1"}, {"region": "eu-west-1"}, id="default-region"
        ),
        pytest.param(
            {"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "x"},
            {"region": "us-east-2"},
            id="region",
        ),
        pytest.param({"awsAnonymousCredential": "true"}, {"anonymous": True}, id="anonymous"),
        pytest.param(
            {"S3_USER_VIRTUAL_BUCKET": "true"}, {"virtual_addressing": True}, id="virtual"
        ),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
            {"access_key_id": "k", "secret_access_key": "s"},
            id="keys",
        ),
    ],
)
def test_s3_from_env(env: dict[str, str], expected: dict[str, Any]) -> None:
    s3 = StorageSettings.from_env(env).s3
    for name, value in expected.items():
        assert getattr(s3, name) == value, name


def test_secrets_from_files(tmp_path: Path) -> None:
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "AWS_ACCESS_KEY_ID").write_text("from-dir\n")
    (secret_dir / "AWS_SECRET_ACCESS_KEY").write_text("dir-secret")
    (secret_dir / "gcloud-application-credentials.json").write_text("{}")
    (tmp_path / "token").write_text("hf-from-file\n")
    env = {"AWS_SECRET_ACCESS_KEY": "env-wins", "HF_TOKEN_FILE": str(tmp_path / "token")}
    settings = StorageSettings.from_env(env, credentials_dir=secret_dir)
    assert settings.s3.access_key_id == "from-dir"
    assert settings.s3.secret_access_key == "env-wins"
    assert settings.hf.token == "hf-from-file"
    assert settings.gcs.credentials_file == str(secret_dir / "gcloud-application-credentials.json")


def test_credentials_dir_from_env_and_other_variables(tmp_path: Path) -> None:
    (tmp_path / "HF_TOKEN").write_text("t")
    env = {
        "STORAGE_CREDENTIALS_DIR": str(tmp_path),
        "PVC_MOUNT_ROOT": "/claims",
        "STORAGE_EMULATOR_HOST": "localhost:9023",
        "HF_ENDPOINT": "http://hub",
        "GOOGLE_APPLICATION_CREDENTIALS": "/key.json",
    }
    settings = StorageSettings.from_env(env)
    assert settings.hf.token == "t"
    assert settings.pvc_root == Path("/claims")
    assert settings.gcs.emulator_host == "http://localhost:9023"
    assert settings.gcs.credentials_file == "/key.json"
    assert settings.hf.endpoint == "http://hub"


def test_secrets_are_not_in_repr() -> None:
    settings = StorageSettings.from_env({"AWS_SECRET_ACCESS_KEY": "hunter2", "HF_TOKEN": "hf_x"})
    assert "hunter2" not in repr(settings) and "hf_x" not in repr(settings)


@pytest.mark.parametrize(
    ("attempt", "jitter", "delay"),
    [
        pytest.param(1, 0.0, 0.5, id="first-low-jitter"),
        pytest.param(1, 1.0, 1.0, id="first-high-jitter"),
        pytest.param(3, 1.0, 4.0, id="doubles"),
        pytest.param(10, 1.0, 10.0, id="capped"),
    ],
)
def test_backoff_delay(attempt: int, jitter: float, delay: float) -> None:
    assert RetryPolicy(attempts=10, base_delay=1.0, max_delay=10.0).delay(attempt, jitter) == delay
