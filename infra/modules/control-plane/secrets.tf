# The control plane's secrets, generated here and kept in Secrets Manager under
# `{prefix}/control-plane/` (the execution role may read only those), encrypted with
# the stack's key. ECS injects them as environment variables at task start.
#
#   secret                                   variable                           value
#   {prefix}/control-plane/secrets-key           TEMPOVOICE_SECRETS_KEY             32 random bytes, base64
#   {prefix}/control-plane/admin-token           TEMPOVOICE_ADMIN_TOKEN             48 random characters
#   {prefix}/control-plane/dashboard-session-key TEMPOVOICE_DASHBOARD_SESSION_KEY   32 random bytes, base64
#   {prefix}/control-plane/database-url          DATABASE_URL                       postgres://…?sslmode=require
#
# The secrets key seals every agent secret stored in the database: a new key makes
# them all unreadable, and the control plane then refuses to start. Its generator
# can therefore not be destroyed by Terraform (prevent_destroy), and its secret waits
# 30 days before deletion. None of these rotate automatically (see the checkov notes
# on each secret); all values are in Terraform state, which must be encrypted.

resource "random_bytes" "secrets_key" {
  length = 32

  lifecycle {
    prevent_destroy = true
  }
}

resource "random_password" "admin_token" {
  length  = 48
  special = false
}

resource "random_bytes" "dashboard_session_key" {
  length = 32
}

# Letters and digits only: the password goes into a URL unescaped.
resource "random_password" "database" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "secrets_key" {
  #checkov:skip=CKV2_AWS_57:Rotation would make every agent secret sealed in the database unreadable: the key cannot change without re-encrypting them, which the control plane does not support.
  name                    = "${var.prefix}/control-plane/secrets-key"
  description             = "TEMPOVOICE_SECRETS_KEY: seals agent secrets in the database. Never change it."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "secrets_key" {
  secret_id     = aws_secretsmanager_secret.secrets_key.id
  secret_string = random_bytes.secrets_key.base64
}

resource "aws_secretsmanager_secret" "admin_token" {
  #checkov:skip=CKV2_AWS_57:Rotated by hand (new version, then redeploy): the token is handed to operators, and an unannounced rotation would lock them out of /v1/admin.
  name                    = "${var.prefix}/control-plane/admin-token"
  description             = "TEMPOVOICE_ADMIN_TOKEN: bearer token of /v1/admin/*"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "admin_token" {
  secret_id     = aws_secretsmanager_secret.admin_token.id
  secret_string = random_password.admin_token.result
}

resource "aws_secretsmanager_secret" "dashboard_session_key" {
  #checkov:skip=CKV2_AWS_57:Rotated by hand (new version, then redeploy); rotating it only signs everyone out of the dashboard, and replicas read it at start-up only.
  name                    = "${var.prefix}/control-plane/dashboard-session-key"
  description             = "TEMPOVOICE_DASHBOARD_SESSION_KEY: seals dashboard session cookies (shared by all replicas)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "dashboard_session_key" {
  secret_id     = aws_secretsmanager_secret.dashboard_session_key.id
  secret_string = random_bytes.dashboard_session_key.base64
}

resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:The password lives in Terraform (aws_db_instance) and in this URL together; a rotation Lambda would have to rewrite the URL and the instance in step. Rotate by replacing random_password.database and redeploying.
  name                    = "${var.prefix}/control-plane/database-url"
  description             = "DATABASE_URL of the control plane's PostgreSQL database"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgres://${local.db_username}:${random_password.database.result}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${local.db_name}?sslmode=require"
}
