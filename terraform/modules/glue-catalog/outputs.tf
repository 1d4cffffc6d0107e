output "database" {
  description = "Glue database name."
  value       = aws_glue_catalog_database.this.name
}

output "location" {
  description = "The database's S3 location (tables go under it)."
  value       = aws_glue_catalog_database.this.location_uri
}
