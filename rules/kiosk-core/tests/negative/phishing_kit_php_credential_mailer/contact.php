<?php
// kiosk test sample: an ordinary contact form
$ip = $_SERVER['REMOTE_ADDR'];
$body = $_POST['name'] . " wrote: " . $_POST['message'] . " (from " . $ip . ")";
mail($admin, "Contact form", $body);
header("Location: https://www.example.com/thanks");
?>
