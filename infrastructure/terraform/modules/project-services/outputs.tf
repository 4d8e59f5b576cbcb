output "project_number" {
  description = "The project's number (service agents and VPC-SC perimeters name it)."
  value       = local.number
}

output "service_agents" {
  description = "E-mail of each Google service agent, by short name."
  value       = local.service_agents
}

output "enabled_services" {
  description = "The enabled APIs (depend on this output to wait for them)."
  value       = [for s in google_project_service.this : s.service]
}
