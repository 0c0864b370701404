# The Mesos masters and the Dispatch server: fixed instances at fixed private addresses
# (main.tf). Every node runs the same image; its user data picks the role.

resource "aws_instance" "master" {
  count = var.master_count

  ami                    = var.image_id
  instance_type          = var.master_instance_type
  subnet_id              = aws_subnet.public[count.index % var.az_count].id
  private_ip             = local.master_ips[count.index]
  vpc_security_group_ids = [aws_security_group.cluster.id]
  iam_instance_profile   = aws_iam_instance_profile.node.name
  key_name               = var.ssh_key_name
  user_data_base64       = local.user_data["master"]

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_size = 20
    volume_type = "gp3"
    encrypted   = true
  }

  tags = { Name = "${var.name}-master-${count.index + 1}", Role = "mesos-master" }
}

resource "aws_instance" "dispatch" {
  ami                    = var.image_id
  instance_type          = var.server_instance_type
  subnet_id              = aws_subnet.public[0].id
  private_ip             = local.server_ip
  vpc_security_group_ids = [aws_security_group.cluster.id]
  iam_instance_profile   = aws_iam_instance_profile.node.name
  key_name               = var.ssh_key_name
  user_data_base64       = local.user_data["server"]

  metadata_options {
    http_tokens = "required"
  }

  # The data dir (every acknowledged dispatch) lives here: keep it on delete protection
  # of your choice; it is encrypted at rest.
  root_block_device {
    volume_size = 50
    volume_type = "gp3"
    encrypted   = true
  }

  # The secrets the server reads at boot exist first.
  depends_on = [
    aws_ssm_parameter.datadog_api_key,
    aws_ssm_parameter.grafana_admin_password,
    aws_ssm_parameter.tls,
  ]

  tags = { Name = "${var.name}-dispatch", Role = "dispatch-server" }
}
