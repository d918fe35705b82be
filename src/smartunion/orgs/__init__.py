"""Union organisations (工会组织), enterprises (企业) and their departments."""
