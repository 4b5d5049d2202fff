-- Back to 1.2 by name after aws_commons--1.2--1.2-full.sql: the catalog is already 1.2's.
\echo Use "ALTER EXTENSION aws_commons UPDATE" to load this file. \quit
