"""Push-to-deploy: a GitHub webhook receiver (internet-facing, unprivileged) and a deployer (the only
part with Docker access), sharing a ledger of deliveries and deploys."""
