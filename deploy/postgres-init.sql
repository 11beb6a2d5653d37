-- Run once by the postgres image when its volume is new: Rasa's tracker store gets its own database, so the
-- application's (neet, made by the image) holds the migrations' tables only.
CREATE DATABASE rasa;
