"""CRD generation: typed models in, structural CustomResourceDefinition YAML out."""
