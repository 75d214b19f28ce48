# network: the VPC every TempoVoice task runs in.
#
# Layout: one public and one private subnet per availability zone (2 or 3 AZs).
# Public subnets hold only the internet-facing ALBs and the NAT gateways; every task
# (agents, control plane) and the database live in private subnets without public
# IPs. Private subnets are /20s (4,096 addresses each): every Fargate task takes one
# address, and a rolling deploy briefly doubles an agent's tasks, so a fleet of
# hundreds of agents needs thousands of addresses.
#
# Egress, and what it costs (us-east-1 list prices):
#   - Agents must reach the internet: Twilio's REST API, OpenAI and other speech
#     providers, and the operators' webhook URLs. There is no way around a NAT
#     gateway (or a public IP per task, which would expose every agent task).
#     NAT gateway: ~$0.045 per hour per gateway + ~$0.045 per GB processed.
#     `single_nat_gateway = true` saves the per-hour cost of all but one gateway,
#     but one AZ's outage then cuts every agent's egress, and traffic from the other
#     AZs pays cross-AZ transfer as well. Production: one per AZ (the default).
#   - S3 (transcripts, recordings) goes through a gateway endpoint: free, and those
#     bytes never pay NAT processing.
#   - AWS APIs used on every task start or call (ECR image pulls, CloudWatch Logs,
#     Secrets Manager, Bedrock runtime) can use interface endpoints instead of NAT:
#     ~$0.01 per hour per endpoint per AZ + ~$0.01 per GB. Five endpoints in three
#     AZs are ~$110 a month before traffic, so they pay off only once image pulls
#     and log volume exceed a few TB a month through NAT; off by default
#     (`enable_interface_endpoints`). ECR layers themselves come from S3 and already
#     use the gateway endpoint. The Bedrock endpoint only serves agents whose speech
#     region is this region.
#
# Flow logs (all traffic) go to CloudWatch Logs, encrypted, with retention.

# Fallback when availability_zones is not given: the first az_count zones by name
# that need no opt-in. No `state` filter on purpose: a zone reported impaired during
# an incident must not drop out of the list and shift every subnet on the next plan.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first az_count zone names (sorted) are used, so a zone AWS adds later never changes the subnets; availability_zones pins the zones explicitly (zone IDs differ per account, so no fixed list fits every account).
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs      = var.availability_zones != null ? var.availability_zones : slice(sort(data.aws_availability_zones.available.names), 0, var.az_count)
  az_count = length(local.azs)

  # Public: the first /24s of the VPC (10.x.0.0/24, 10.x.1.0/24, …), inside its first
  # /20. Private: the following /20s (10.x.16.0/20, 10.x.32.0/20, …).
  public_cidrs  = [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, 8, i)]
  private_cidrs = [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, 4, i + 1)]

  nat_count = var.single_nat_gateway ? 1 : local.az_count
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # required for interface endpoints' private DNS

  tags = { Name = "${var.prefix}-vpc" }
}

# The default security group allows all traffic between its members: take every
# rule away so that nothing can use it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.prefix}-default-unused" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.prefix}-igw" }
}

# --- subnets ------------------------------------------------------------------------

resource "aws_subnet" "public" {
  count = local.az_count

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = local.public_cidrs[count.index]
  # The ALBs and NAT gateways get their addresses explicitly; nothing else runs here.
  map_public_ip_on_launch = false

  tags = { Name = "${var.prefix}-public-${local.azs[count.index]}", tier = "public" }
}

resource "aws_subnet" "private" {
  count = local.az_count

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = local.private_cidrs[count.index]

  tags = { Name = "${var.prefix}-private-${local.azs[count.index]}", tier = "private" }
}

# --- routing ------------------------------------------------------------------------

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.prefix}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = local.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"

  tags = { Name = "${var.prefix}-nat-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = { Name = "${var.prefix}-nat-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.this]
}

# One route table per AZ, so each AZ's tasks leave through their own AZ's NAT gateway
# (or the single one).
resource "aws_route_table" "private" {
  count = local.az_count

  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.prefix}-private-${local.azs[count.index]}" }
}

resource "aws_route" "private_nat" {
  count = local.az_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = local.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# --- endpoints ----------------------------------------------------------------------

data "aws_vpc_endpoint_service" "s3" {
  service      = "s3"
  service_type = "Gateway"
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = data.aws_vpc_endpoint_service.s3.service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  tags = { Name = "${var.prefix}-s3" }
}

data "aws_vpc_endpoint_service" "interface" {
  for_each = var.enable_interface_endpoints ? toset(var.interface_endpoint_services) : toset([])

  service      = each.value
  service_type = "Interface"
}

resource "aws_security_group" "endpoints" {
  count = var.enable_interface_endpoints ? 1 : 0

  name        = "${var.prefix}-endpoints"
  description = "TempoVoice interface endpoints: HTTPS from the VPC"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.prefix}-endpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count = var.enable_interface_endpoints ? 1 : 0

  security_group_id = aws_security_group.endpoints[0].id
  description       = "HTTPS from tasks in the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = aws_vpc.this.cidr_block
}

resource "aws_vpc_endpoint" "interface" {
  for_each = data.aws_vpc_endpoint_service.interface

  vpc_id              = aws_vpc.this.id
  service_name        = each.value.service_name
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  tags = { Name = "${var.prefix}-${each.key}" }
}

# --- flow logs ----------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/aws/vpc/${var.prefix}-flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "flow_logs_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [aws_vpc.this.owner_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${var.prefix}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_trust.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid = "WriteTheFlowLogGroupOnly"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      aws_cloudwatch_log_group.flow_logs.arn,
      "${aws_cloudwatch_log_group.flow_logs.arn}:*",
    ]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "${var.prefix}-vpc-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 600

  tags = { Name = "${var.prefix}-flow-logs" }
}
