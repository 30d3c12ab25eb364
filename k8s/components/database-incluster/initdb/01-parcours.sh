# Sourced by the MariaDB image's entrypoint on the first start of an empty data directory only:
# one database and one user per Parcours service, each user with every privilege on its own
# database only (the services' `migrate` creates the tables). Passwords come from the Secret
# mariadb-credentials (PARCOURS_<SERVICE>_PASSWORD).
for parcours_db in referential evaluation cep; do
  parcours_var="PARCOURS_${parcours_db^^}_PASSWORD"
  parcours_password="${!parcours_var:?$parcours_var is not set}"
  parcours_password="${parcours_password//\\/\\\\}"
  parcours_password="${parcours_password//\'/\\\'}"
  docker_process_sql --database=mysql <<SQL
CREATE DATABASE IF NOT EXISTS \`${parcours_db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS '${parcours_db}'@'%' IDENTIFIED BY '${parcours_password}';
GRANT ALL PRIVILEGES ON \`${parcours_db}\`.* TO '${parcours_db}'@'%';
SQL
done
unset parcours_db parcours_var parcours_password
