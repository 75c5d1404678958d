#!/bin/bash
# Post-installation bootstrap: run once by the OVHcloud installer after the OS is installed.
# ovhform base64-encodes this file into customizations.postInstallationScript.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends chrony prometheus-node-exporter
systemctl enable --now chrony prometheus-node-exporter
echo "bootstrapped by ovhform on $(date -Is)" > /etc/motd
