# The control plane's PostgreSQL 16 database (tenants, API keys, agent configs and
# their sealed secrets, deployments, placements).
#
# Private (no public access), in the private subnets, reachable on 5432 only from the
# control plane's tasks; storage and Performance Insights encrypted with the stack's
# key; TLS required (rds.force_ssl; DATABASE_URL says sslmode=require); automated
# backups kept `backup_retention_days`, tags copied to snapshots, a final snapshot on
# deletion, deletion protection; minor versions upgraded automatically in the
# maintenance window; enhanced monitoring every 60 s; the postgresql and upgrade logs
# exported to CloudWatch (log groups made here, with retention). Password
# authentication with a generated password (secrets.tf); IAM database authentication
# stays off because the binary connects with a URL, not with IAM tokens.

locals {
  db_identifier = "${var.prefix}-control-plane"
  db_name       = "tempovoice"
  db_username   = "tempovoice"
}

data "aws_partition" "current" {}

resource "aws_security_group" "database" {
  name        = "${var.prefix}-control-plane-db"
  description = "TempoVoice control plane database: PostgreSQL from the control plane tasks only"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.prefix}-control-plane-db" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the control plane tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_db_subnet_group" "this" {
  name        = local.db_identifier
  description = "TempoVoice control plane database: private subnets"
  subnet_ids  = var.private_subnet_ids
}

resource "aws_db_parameter_group" "this" {
  # A prefix, not a name: a changed group is created before the old one is dropped.
  name_prefix = "${local.db_identifier}-pg16-"
  family      = "postgres16"
  description = "TempoVoice control plane: TLS only, slow query and connection logging"

  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }

  # Statements slower than 1 s, with their duration.
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "database" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.db_identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "rds_monitoring_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.prefix}-rds-monitoring"
  description        = "TempoVoice ${var.prefix}: RDS enhanced monitoring of the control plane database"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_trust.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_161:The control plane connects with a DATABASE_URL (sqlx, password from Secrets Manager); it has no IAM token authentication, so IAM auth would be unused.
  identifier     = local.db_identifier
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = local.db_name
  username = local.db_username
  password = random_password.database.result
  port     = 5432

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.db_identifier}-final"
  deletion_protection       = var.db_deletion_protection

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false

  iam_database_authentication_enabled = false

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.database, aws_iam_role_policy_attachment.rds_monitoring]
}
