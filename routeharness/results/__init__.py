"""Result records and result sets, their aggregation and ranking, report tables and plots."""
