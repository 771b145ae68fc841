"""Deploy backends: one interface (base.DeployBackend), chosen per service in include/config/services.yaml."""
