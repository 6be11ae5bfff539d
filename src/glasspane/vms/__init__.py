"""VMs: made from templates, personalized with cloud-init, managed on any host."""
