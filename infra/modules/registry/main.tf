# registry: the ECR repositories CI pushes release images to.
#
#   {prefix}-agent-runtime   the one image every agent runs (TEMPOVOICE_RUNTIME_REPOSITORY;
#                            built multi-arch from docker/agent-runtime.Dockerfile)
#   {prefix}-control-plane   the control-plane binary; it serves the Leptos dashboard
#                            at / itself, so the dashboard needs no repository of its own
#                            (docker/dashboard.Dockerfile is for running it separately)
#
# Tags are immutable: a release tag always names the same image, and the deployer
# pins each agent's task definition to the digest anyway. Images are scanned on push
# and encrypted with the stack's key when one is given.
#
# Lifecycle: untagged images expire after 7 days (failed or superseded pushes); of
# tagged images the newest `keep_tagged_images` are kept. Agents run images pinned
# by digest, and ECS needs the image whenever it starts a task (scaling, replacing a
# failed task), so keep enough releases to cover the oldest image any agent may still
# run: an agent whose rollout failed stays on its previous image.

locals {
  repositories = {
    agent_runtime = "${var.prefix}-agent-runtime"
    control_plane = "${var.prefix}-control-plane"
  }

  lifecycle_policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.keep_tagged_images} tagged images"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = ["*"]
          countType      = "imageCountMoreThan"
          countNumber    = var.keep_tagged_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

resource "aws_ecr_repository" "this" {
  for_each = local.repositories

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.kms_key_arn == null ? "AES256" : "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy     = local.lifecycle_policy
}
